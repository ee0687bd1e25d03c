from lstmq.cli import main

main()
