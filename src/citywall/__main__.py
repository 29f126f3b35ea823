from citywall.cli import main

raise SystemExit(main())
