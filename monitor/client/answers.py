"""The monitor's answers as the client reads them (`libertai_failover.answers`)."""

from libertai_failover.answers import MAX_ANSWER_BYTES, Answer, Candidate, parse_answer

__all__ = ["MAX_ANSWER_BYTES", "Answer", "Candidate", "parse_answer"]
