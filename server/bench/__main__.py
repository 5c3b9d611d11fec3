from server.bench import main

raise SystemExit(main())
