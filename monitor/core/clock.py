"""The one source of time for the service, the scheduler, the dispatcher, the simulator and the
failover client. The code lives in the light client package (`libertai_failover.clock`), which the
failover client ships alone; the monitor uses the same classes."""

from libertai_failover.clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"]
