"""A headless Chromium (Debian's `chromium`, never downloaded) driven through its DevTools
protocol over a WebSocket (the pinned `websocket-client`): navigate, click, type, read the page,
take screenshots. Used by the web console's tests."""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """One headless Chromium process with one page."""

    def __init__(self, width=1280, height=800):
        path = chromium_path()
        if path is None:
            raise RuntimeError("Debian's chromium is not installed (Tools/dev test installs it)")
        self.profile = tempfile.mkdtemp(prefix="spool-chromium-")
        args = [
            path, "--headless=new", "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
            "--disable-background-networking", "--disable-sync", "--disable-component-update",
            "--hide-scrollbars", "--mute-audio", "--disable-dev-shm-usage", f"--window-size={width},{height}", "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self.log_path = os.path.join(self.profile, "stderr.log")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
        port = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(self.log_path, errors="replace") as log:
                found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", log.read())
            if found:
                port = int(found.group(1))
                break
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self.process.returncode}")
            time.sleep(0.1)
        if port is None:
            self.close()
            raise RuntimeError("chromium printed no DevTools address within 30 seconds")
        self.port = port
        request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
        target = json.loads(urllib.request.urlopen(request, timeout=10).read())
        self.ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.dialogs = []
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.resize(width, height)

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # The protocol.

    def _receive(self):
        message = json.loads(self.ws.recv())
        if message.get("method") == "Page.javascriptDialogOpening":
            # A page must never open a dialog; record it and dismiss it so the test can fail on it.
            self.dialogs.append(message["params"].get("message"))
            self.send_nowait("Page.handleJavaScriptDialog", {"accept": False})
        return message

    def send_nowait(self, method, params=None):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        return self.next_id

    def send(self, method, params=None):
        wanted = self.send_nowait(method, params)
        while True:
            message = self._receive()
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)

    def wait_event(self, method, timeout=30.0):
        for index, event in enumerate(self.events):
            if event["method"] == method:
                return self.events.pop(index)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            message = self._receive()
            if message.get("method") == method:
                self.ws.settimeout(30)
                return message
            if "method" in message:
                self.events.append(message)
        raise TimeoutError(f"no {method} within {timeout} s")

    # What a test does.

    def resize(self, width, height, mobile=False):
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})

    def goto(self, url):
        """Loads `url` and waits for its load event; returns the HTTP status of the document."""
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        return self.status()

    def status(self):
        return self.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")

    def evaluate(self, expression):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def text(self, selector="body"):
        return self.evaluate(f"(function(){{var e=document.querySelector({json.dumps(selector)});return e?e.innerText:null}})()")

    def count(self, selector):
        return self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")

    def fill(self, selector, value):
        """Focuses the field and types `value` into it, as a person would."""
        self.click(selector, navigates=False)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).value=''")
        self.send("Input.insertText", {"text": value})

    def click(self, selector, navigates=True):
        """A real mouse click in the middle of the element; waits for the page it loads."""
        box = self.evaluate(f"""(function(){{var e=document.querySelector({json.dumps(selector)});
            if(!e)return null;e.scrollIntoView({{block:'center'}});var r=e.getClientRects()[0]||e.getBoundingClientRect();
            return [r.left+r.width/2,r.top+r.height/2]}})()""")
        if box is None:
            raise AssertionError(f"no element {selector} on {self.evaluate('location.href')}")
        x, y = box
        if navigates:
            self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})
        if navigates:
            self.wait_event("Page.loadEventFired")

    def screenshot(self, path, width=1280, height=800, mobile=False, scroll_to=None):
        """A PNG of the page at that viewport size: the first screenful, or the one that starts at `scroll_to`."""
        self.resize(width, height, mobile)
        if scroll_to:
            self.evaluate(f"document.querySelector({json.dumps(scroll_to)}).scrollIntoView({{block:'start'}})")
        time.sleep(0.2)
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        with open(path, "wb") as out:
            out.write(base64.b64decode(data))
        self.resize(1280, 800)
