from finetune_trainer.curate.cli import main

raise SystemExit(main())
