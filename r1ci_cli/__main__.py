from r1ci_cli.cli import main

main()
