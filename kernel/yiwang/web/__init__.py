"""The web shell: templates and themes, kernel pages, plugin mounts, error pages."""
