"""Protocol adapters: each maps one wire protocol onto the service core."""
