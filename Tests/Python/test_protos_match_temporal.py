"""Every definition in Spool's .proto files matches Temporal's, as shipped in the pinned wheel.

Spool's server speaks Temporal's WorkflowService with .proto files written for Spool (a subset of
temporalio/api). A wrong field number or type would not fail to compile: it would silently
corrupt a field on the wire. This test parses our files with protoc and compares each message,
field (number, type, label, type name, oneof, proto3 optional), enum value and service method
against the descriptors in the `temporalio` wheel pinned in Tools/python-requirements.txt.
"""

import importlib
import shutil
import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "Sources" / "SpoolServerProtos" / "Protos"


def our_files():
    """Our .proto files as FileDescriptorProtos (protoc, with source names relative to PROTOS)."""
    protoc = shutil.which("protoc")
    if protoc is None:
        pytest.fail("protoc not found: apt-get install protobuf-compiler")
    names = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    assert names, f"no .proto files under {PROTOS}"
    result = subprocess.run(
        [protoc, "-I", str(PROTOS), "--descriptor_set_out=/dev/stdout", *names],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"protoc failed: {result.stderr.decode()}")
    files = descriptor_pb2.FileDescriptorSet.FromString(result.stdout).file
    return [f for f in files if f.name.startswith("temporal/")]


def temporal_pool(file_names):
    """The wheel's descriptor pool, with the temporalio modules of `file_names` loaded
    (temporal/api/common/v1/message.proto is temporalio.api.common.v1.message_pb2)."""
    for name in file_names:
        module = "temporalio." + name.removeprefix("temporal/").removesuffix(".proto").replace("/", ".") + "_pb2"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            pass  # reported below as a file Temporal does not have
    return descriptor_pool.Default()


def temporal_file_proto(pool, name):
    proto = descriptor_pb2.FileDescriptorProto()
    pool.FindFileByName(name).CopyToProto(proto)
    return proto


def messages(prefix, descriptors):
    """(full name, DescriptorProto) of each message, nested ones included."""
    for message in descriptors:
        full = f"{prefix}.{message.name}"
        yield full, message
        yield from messages(full, message.nested_type)


def enums(prefix, file_or_message_enums, nested_messages):
    for enum in file_or_message_enums:
        yield f"{prefix}.{enum.name}", enum
    for message in nested_messages:
        yield from enums(f"{prefix}.{message.name}", message.enum_type, message.nested_type)


LABELS = {v: k for k, v in descriptor_pb2.FieldDescriptorProto.Label.items()}
TYPES = {v: k for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()}


def field_facts(message, field):
    oneof = message.oneof_decl[field.oneof_index].name if field.HasField("oneof_index") else None
    return {
        "number": field.number,
        "type": TYPES[field.type],
        "label": LABELS[field.label],
        "type_name": field.type_name,
        "oneof": None if field.proto3_optional else oneof,
        "proto3_optional": field.proto3_optional,
    }


def compare():
    """Every mismatch between our files and Temporal's, as sentences naming the definition."""
    files = our_files()
    pool = temporal_pool([f.name for f in files])
    problems = []
    checked = {"files": 0, "messages": 0, "fields": 0, "enum values": 0, "methods": 0}
    for ours in files:
        checked["files"] += 1
        try:
            theirs = temporal_file_proto(pool, ours.name)
        except KeyError:
            problems.append(f"{ours.name}: Temporal has no file of this name")
            continue
        if ours.package != theirs.package:
            problems.append(f"{ours.name}: package {ours.package!r}, Temporal's is {theirs.package!r}")
        their_messages = dict(messages(theirs.package, theirs.message_type))
        for name, message in messages(ours.package, ours.message_type):
            checked["messages"] += 1
            their_message = their_messages.get(name)
            if their_message is None:
                problems.append(f"message {name}: not in Temporal's {ours.name}")
                continue
            their_fields = {f.name: f for f in their_message.field}
            for field in message.field:
                checked["fields"] += 1
                their_field = their_fields.get(field.name)
                if their_field is None:
                    problems.append(f"field {name}.{field.name}: Temporal's message has no such field")
                    continue
                mine, temporal = field_facts(message, field), field_facts(their_message, their_field)
                for fact in mine:
                    if mine[fact] != temporal[fact]:
                        problems.append(
                            f"field {name}.{field.name}: {fact} is {mine[fact]!r}, Temporal's is {temporal[fact]!r}"
                        )
        their_enums = dict(enums(theirs.package, theirs.enum_type, theirs.message_type))
        for name, enum in enums(ours.package, ours.enum_type, ours.message_type):
            their_enum = their_enums.get(name)
            if their_enum is None:
                problems.append(f"enum {name}: not in Temporal's {ours.name}")
                continue
            their_values = {v.name: v.number for v in their_enum.value}
            for value in enum.value:
                checked["enum values"] += 1
                if value.name not in their_values:
                    problems.append(f"enum value {name}.{value.name}: Temporal's enum has no such value")
                elif their_values[value.name] != value.number:
                    problems.append(
                        f"enum value {name}.{value.name}: number {value.number}, Temporal's is {their_values[value.name]}"
                    )
        their_services = {s.name: s for s in theirs.service}
        for service in ours.service:
            their_service = their_services.get(service.name)
            if their_service is None:
                problems.append(f"service {ours.package}.{service.name}: not in Temporal's {ours.name}")
                continue
            their_methods = {m.name: m for m in their_service.method}
            for method in service.method:
                checked["methods"] += 1
                their_method = their_methods.get(method.name)
                where = f"method {ours.package}.{service.name}/{method.name}"
                if their_method is None:
                    problems.append(f"{where}: Temporal's service has no such method")
                    continue
                for fact in ("input_type", "output_type", "client_streaming", "server_streaming"):
                    if getattr(method, fact) != getattr(their_method, fact):
                        problems.append(
                            f"{where}: {fact} is {getattr(method, fact)!r}, Temporal's is {getattr(their_method, fact)!r}"
                        )
    return problems, checked


def test_every_definition_matches_temporals():
    problems, checked = compare()
    assert checked["fields"] > 0 and checked["methods"] > 0, checked
    assert not problems, "Spool's .proto files differ from temporalio's:\n" + "\n".join(problems)


def test_a_wrong_field_number_is_caught(tmp_path, monkeypatch):
    """The check itself works: a copy of our files with one field renumbered fails, naming it."""
    copy = tmp_path / "Protos"
    shutil.copytree(PROTOS, copy)
    common = copy / "temporal/api/common/v1/message.proto"
    text = common.read_text()
    assert "string run_id = 2;" in text
    common.write_text(text.replace("string run_id = 2;", "string run_id = 3;"))
    monkeypatch.setitem(globals(), "PROTOS", copy)
    problems, _ = compare()
    assert problems == [
        "field temporal.api.common.v1.WorkflowExecution.run_id: number is 3, Temporal's is 2"
    ], problems


if __name__ == "__main__":
    problems, checked = compare()
    print(checked)
    print("\n".join(problems) or "all match")
