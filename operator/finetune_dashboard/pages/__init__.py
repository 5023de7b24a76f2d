"""The dashboard's pages: pure functions from a cache snapshot to HTML."""
