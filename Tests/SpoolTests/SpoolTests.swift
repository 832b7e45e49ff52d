// Tests of the Spool engine.
