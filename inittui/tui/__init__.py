"""The Textual app: ``inittui TARGET`` opens :func:`inittui.tui.app.run_app`."""
