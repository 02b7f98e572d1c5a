"""Every message that travels between actors, and the one codec that puts them on the wire."""
