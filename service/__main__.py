"""``python -m service``: the ``resolvd`` command."""

from service.cli import main

raise SystemExit(main())
