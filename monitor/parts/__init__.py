"""The running parts of one monitor: fleet, targets, dispatcher, recorder, best hosts, publisher."""
