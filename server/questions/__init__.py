"""Viewer questions, comments, votes, reactions and their moderation; the big-screen wall feed."""
