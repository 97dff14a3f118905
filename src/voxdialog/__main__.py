"""``python -m voxdialog``."""

from voxdialog.cli import main

raise SystemExit(main())
