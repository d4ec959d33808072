"""flux.abc: abstract base classes of the ``flux`` package.

``JournalConsumerBase`` and ``JournalEventBase`` (flux/abc/journal.py)
are the bases of the journal consumers, ``flux.job.JournalConsumer`` and
``flux.resource.ResourceJournalConsumer``, and of any consumer a script
writes for another journal-style service.
"""
from flux.abc.journal import JournalConsumerBase, JournalEventBase

__all__ = ["JournalConsumerBase", "JournalEventBase"]
