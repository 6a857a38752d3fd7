"""Test helpers shared by every test module: Lambda contexts, sample events, environment for subprocesses."""
