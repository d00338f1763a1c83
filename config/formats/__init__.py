"""Django's display formats for the project's language (FORMAT_MODULE_PATH)."""
