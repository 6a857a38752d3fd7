"""The embedded local stack: S3 (moto's server), MongoDB wire (SecantusDB), run as child processes.

Used by ``scenestore serve`` and by the test suite's session fixture, so both run the same real parts.
SecantusDB is GPL-2.0 and beta: it is only ever started as a separate process, never imported.
"""
