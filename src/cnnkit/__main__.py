from cnnkit.cli.main import main

raise SystemExit(main())
