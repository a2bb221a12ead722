"""Rooms: lifecycle (scheduled, live, ended), announcements, presence, viewers."""
