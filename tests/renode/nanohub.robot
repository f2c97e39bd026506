*** Comments ***
Renode suite: a real MCU (STM32F4DISC, Cortex-M4) running the Zephyr port of
MicroPython, its REPL on usart2. Run with tests/renode/run.sh (make test-renode).
The image is not a nanohub: the suite checks the REPL and raw REPL that
nanohub flash relies on, and that nanohub flash, connected to the emulated
UART over a socket, recognises the board and refuses it with its reasons
(no board module for platform 'zephyr'; RAM too small).
Tester timeouts are virtual time; host-side timeouts are generous because
socket traffic is not synchronised with virtual time.

*** Settings ***
Library           Process
Suite Setup       Setup
Suite Teardown    Teardown
Test Teardown     Test Teardown
Resource          ${RENODEKEYWORDS}

*** Variables ***
${ELF}            @https://zephyr-dashboard.renode.io/zephyr/ed7f2e0833c25fdc67e0d2c1e6d6915275407569/stm32f4_disco/micropython/micropython.elf
${REPL}           @https://zephyr-dashboard.renode.io/zephyr_sim/ed7f2e0833c25fdc67e0d2c1e6d6915275407569/a89f6f74dc68926e931ddad63a8a5be317822434/stm32f4_disco/micropython/micropython.repl
${NANOHUB}        nanohub
${PORT}           33457
${UART}           sysbus.usart2

*** Keywords ***
Start Board
    Execute Command           $bin=${ELF}
    Execute Command           $repl=${REPL}
    Execute Command           include @${CURDIR}/nanohub.resc

Start Board With Tester
    Start Board
    Create Terminal Tester    ${UART}    timeout=30
    Start Emulation
    Wait For Prompt On Uart   >>>

Raw Exec
    [Arguments]               ${code}
    Send Key To Uart          0x01
    Wait For Line On Uart     raw REPL; CTRL-B to exit
    Write To Uart             ${code}
    Send Key To Uart          0x04

*** Test Cases ***
The MicroPython REPL Answers On The UART
    Start Board With Tester
    Write Line To Uart        6*7
    Wait For Line On Uart     42

The Raw REPL Runs Code Like nanohub flash Sends It
    Start Board With Tester
    Raw Exec                  print('nanohub', 6*7)
    Wait For Line On Uart     nanohub 42
    Send Key To Uart          0x02
    Wait For Prompt On Uart   >>>

The Board Reports What nanohub flash Checks
    Start Board With Tester
    Raw Exec                  import sys,gc;print('probe', sys.platform, sys.implementation.version[:2], gc.mem_free())
    Wait For Line On Uart     probe zephyr

nanohub flash Refuses The Board With Its Reasons
    Start Board
    Execute Command           emulation CreateServerSocketTerminal ${PORT} "hub" false
    Execute Command           connector Connect ${UART} hub
    Start Emulation
    ${r}=                     Run Process    ${NANOHUB}    --port    socket://127.0.0.1:${PORT}
    ...                       flash    --dry-run    timeout=300s
    Log                       ${r.stdout}
    Log                       ${r.stderr}
    Should Be Equal As Integers    ${r.rc}    1
    Should Contain            ${r.stderr}    cannot flash socket://127.0.0.1:${PORT} (MicroPython
    Should Contain            ${r.stderr}    no nanohub board module for platform 'zephyr'
    Should Contain            ${r.stderr}    bytes of RAM free
