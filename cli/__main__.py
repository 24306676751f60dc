from twinsearch.cli.app import main

main()
