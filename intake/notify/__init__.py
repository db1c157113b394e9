"""Notifications: incidents and maintenance told to the contacts in scope, and the status page.

Where it sits: beside the case flow, driven by staff (`intake notify`) and by
the daemon's scheduled work. `scope` picks the contacts a notice reaches,
`when` reads the times staff write, `mail` renders one step once and
personalises it per recipient, `calendar` makes the iCalendar part,
`notices` changes notices and queues their mail in the outbox, `schedule`
runs the jobs that fall due, `joining` links outage cases to an open
incident, `early_warning` drafts an incident from a burst of outage cases,
and `status_page` writes the static site.
"""
