from deepcsp.cli.main import main

raise SystemExit(main())
