from fle_core.cli import main

raise SystemExit(main())
