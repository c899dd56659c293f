from inittui.cli import main

raise SystemExit(main())
