# fpattr's fixtures for plugin tests (isolated FPATTR_HOME, plugin_host, tiny_images, ...)
pytest_plugins = ["fpattr.testing.pytest_plugin"]
