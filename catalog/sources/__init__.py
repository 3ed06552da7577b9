"""Readers for what stewards bring: each checks a source file and describes it."""
