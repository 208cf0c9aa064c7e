from civicair.cli import main

main()
