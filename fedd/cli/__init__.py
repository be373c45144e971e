"""The `fedd` command line: one module per command, each a shell over the library.

    main.py          the `fedd` group, its logging and the mapping of user errors
                     to one stderr line (the console script and `python -m fedd`)
    data.py          fedd data synth | split | prepare
    train.py         fedd train centralized
    demo.py          fedd demo
    simulate.py      fedd simulate
    report.py        fedd report
    start.py         fedd start hub | peer
    status.py        fedd status [peers | rounds | peer]
    statusclient.py  what `fedd status` sends the hub, and how it shows the answer
    keys.py          fedd keys generate
    options.py       option types and options the commands share

What the commands of the same name run is beside this package: `fedd.demo`,
`fedd.simulate` and `fedd.report`.
"""
