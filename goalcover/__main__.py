from goalcover.ui.cli import main

main()
