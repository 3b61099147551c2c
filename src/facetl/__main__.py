from facetl.cli import main

main()
