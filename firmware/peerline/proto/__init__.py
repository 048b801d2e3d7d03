"""The sans-I/O protocol core: state machines that take bytes, commands and the time, and
hand out bytes, events and their next wake-up."""
