from server.bench.cli import main

raise SystemExit(main())
