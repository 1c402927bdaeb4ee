"""BBH date_understanding and temporal_sequences: seeded generators and computed references.

date_understanding: a sentence fixes today's date (``Yesterday was Apr 30, 2021.``, ``Today is Christmas Eve of
1937.``, ``2015 is coming in 36 hours.``, UK day-first dates, anniversaries), a question shifts it (tomorrow, a week
ago, a month ago, one year ago, 24 hours later) and six MM/DD/YYYY options hold the answer and five distinct near
misses. Month and year shifts only start from days 1-28, so the calendar answer is unambiguous. The reference
program rebuilds today from the anchor date and relation with ``datetime`` and applies the shift.

temporal_sequences: a person's day is covered by sightings except one gap between waking up and a closing time;
the question asks when they could have gone, with the gap and three sighting intervals as options. The reference
program finds the uncovered interval.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping
from typing import Any

from r1ci_cli.tasks.bbh._common import generated_family, option_instance, range_knob
from r1ci_cli.tasks.registry import Instance, program

# ---------------------------------------------------------------------------------------------- dates

_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_SHIFTS = [("What is the date today in MM/DD/YYYY?", ["days", 0]),
           ("What is the date tomorrow in MM/DD/YYYY?", ["days", 1]),
           ("What is the date yesterday in MM/DD/YYYY?", ["days", -1]),
           ("What is the date 24 hours later in MM/DD/YYYY?", ["days", 1]),
           ("What is the date one week ago from today in MM/DD/YYYY?", ["days", -7]),
           ("What is the date one week from today in MM/DD/YYYY?", ["days", 7]),
           ("What is the date 10 days ago in MM/DD/YYYY?", ["days", -10]),
           ("What is the date a month ago in MM/DD/YYYY?", ["months", -1]),
           ("What is the date one year ago from today in MM/DD/YYYY?", ["years", -1])]


def _long(day: dt.date) -> str:
    return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"


def _mdy(day: dt.date) -> str:
    return f"{day.month:02d}/{day.day:02d}/{day.year}"


def _today_sentence(rng: random.Random, today: dt.date) -> tuple[str, list[int], str]:
    """A sentence fixing ``today``, and the (anchor date, relation) the reference rebuilds it from.

    The anchor is ``[year, month, day]``; for anniversaries ``[year, month, day, years]``.
    """
    choices = ["today", "yesterday", "tomorrow", "delayed", "mdy"]
    if today.month == 12 and today.day == 24:
        choices.append("christmas_eve")
    if today.month == 12 and today.day == 30:
        choices.append("coming")
    if today.day <= 12 and today.month != today.day:
        choices.append("uk")
    if today.month == 1 and today.day <= 7 and today.weekday() == 0:
        choices.append("first_monday")
    if not (today.month == 2 and today.day == 29):
        choices.append("anniversary")
    relation = rng.choice(choices)
    one = dt.timedelta(days=1)
    if relation == "today":
        return f"Today is {_long(today)}.", list(today.timetuple()[:3]), relation
    if relation == "mdy":
        return f"It is {today.month}/{today.day}/{today.year} today.", list(today.timetuple()[:3]), relation
    if relation == "yesterday":
        anchor = today - one
        return f"Yesterday was {_long(anchor)}.", list(anchor.timetuple()[:3]), relation
    if relation == "tomorrow":
        anchor = today + one
        return f"Tomorrow is {_mdy(anchor)}.", list(anchor.timetuple()[:3]), relation
    if relation == "delayed":
        anchor = today - one
        return (f"The concert was scheduled to be on {_mdy(anchor)}, but was delayed by one day to today.",
                list(anchor.timetuple()[:3]), relation)
    if relation == "anniversary":
        years = rng.randint(1, 30)
        anchor = today.replace(year=today.year - years)
        return (f"Jane and John married on {_long(anchor)}. It is their {years}-year anniversary today.",
                list(anchor.timetuple()[:3]) + [years], relation)
    if relation == "christmas_eve":
        return f"Today is Christmas Eve of {today.year}.", [today.year, 12, 24], relation
    if relation == "coming":
        return f"{today.year + 1} is coming in 36 hours.", [today.year + 1, 1, 1], relation
    if relation == "uk":
        return ("In the UK, people usually put the day before the month when formatting the date. Therefore, "
                f"today is {today.day:02d}/{today.month:02d}/{today.year} to them.", list(today.timetuple()[:3]),
                relation)
    first = dt.date(today.year, 1, 1)
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    return (f"The first day of {today.year} is a {names[first.weekday()]}, and today is the first Monday of "
            f"{today.year}.", [today.year, 1, 1], relation)


def _shift(day: dt.date, unit: str, amount: int) -> dt.date:
    if unit == "days":
        return day + dt.timedelta(days=amount)
    months = day.year * 12 + day.month - 1 + (amount if unit == "months" else 12 * amount)
    return day.replace(year=months // 12, month=months % 12 + 1)


def generate_date(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    start, end = range_knob(knobs, "min_year", "max_year", 100, 9000)
    special = rng.random()
    year = rng.randint(start, end)
    if special < 0.1:
        today = dt.date(year, 12, 24)
    elif special < 0.2:
        today = dt.date(year, 12, 30)
    elif special < 0.28:
        first = dt.date(year, 1, 1)
        today = first + dt.timedelta(days=(7 - first.weekday()) % 7)
    else:
        today = dt.date(year, 1, 1) + dt.timedelta(days=rng.randrange(365))
    sentence, anchor, relation = _today_sentence(rng, today)
    shifts = [s for s in _SHIFTS if s[1][0] == "days" or today.day <= 28]
    question, (unit, amount) = rng.choice(shifts)
    answer = _shift(today, unit, amount)
    wrong = {_shift(answer, "days", d) for d in (1, -1, 7, -7, 2)} | {today}
    if answer.day <= 12:
        wrong.add(dt.date(answer.year, answer.day, answer.month))
    if answer.day <= 28:  # month and year shifts of later days may not exist (Feb 30, Feb 29 of 2023)
        wrong |= {_shift(answer, unit, k) for unit in ("months", "years") for k in (1, -1)}
    wrong.discard(answer)
    distractors = rng.sample(sorted(wrong), 5)
    options = [_mdy(d) for d in [answer] + distractors]
    rng.shuffle(options)
    return option_instance(f"{sentence} {question}", options, options.index(_mdy(answer)), anchor=anchor,
                           relation=relation, shift=[unit, amount])


def solve_date(anchor, relation, shift, options):
    """Rebuild today from the anchor date and how the text relates it to today, shift it, pick the option."""
    import datetime

    day = datetime.date(*anchor[:3])
    if relation == "anniversary":  # anchor = [year, month, day, years married]
        day = day.replace(year=day.year + anchor[3])
    elif relation == "yesterday" or relation == "delayed":
        day += datetime.timedelta(days=1)
    elif relation == "tomorrow":
        day -= datetime.timedelta(days=1)
    elif relation == "coming":  # the new year is 36 hours away: today is December 30
        day -= datetime.timedelta(days=2)
    elif relation == "first_monday":
        day += datetime.timedelta(days=(7 - day.weekday()) % 7)
    unit, amount = shift
    if unit == "days":
        day += datetime.timedelta(days=amount)
    else:
        months = day.year * 12 + day.month - 1 + (amount if unit == "months" else 12 * amount)
        day = day.replace(year=months // 12, month=months % 12 + 1)
    text = f"{day.month:02d}/{day.day:02d}/{day.year}"
    return "(" + "ABCDEF"[options.index(text)] + ")"


def reference_date(inst: Instance) -> str:
    """datetime arithmetic from the anchor date."""
    c = inst.check
    return program([solve_date], "print(solve_date(anchor, relation, shift, options))", anchor=c["anchor"],
                   relation=c["relation"], shift=c["shift"], options=c["options"])


# ---------------------------------------------------------------------------------------------- temporal

_PEOPLE = ["Emily", "Elizabeth", "Jessica", "Leslie", "William", "Sarah", "Susan", "Ashley", "Mark", "David",
           "Hannah", "Jason", "Samantha", "Anthony", "Andrew", "Nancy", "Michael", "Richard", "Tiffany", "Betty",
           "James", "Linda", "Sean", "Kimberly", "Thomas", "Lisa", "John", "Steven"]
_PLACES = ["museum", "park", "library", "bakery", "gas station", "art studio", "coffee shop", "beach",
           "dance studio", "football field", "swimming pool", "art show", "clothing store", "market", "gym"]
_ACTIVITIES = ["reading at the library", "watching a movie at the theater", "waiting at the airport",
               "buying clothes at the mall", "taking photos near the Eiffel Tower", "sitting on a rooftop",
               "working at the office", "buying a bike at the bike shop", "walking in the garden",
               "getting a coffee at the cafe", "playing tennis at the tennis court", "stretching at a yoga studio",
               "driving to the water park", "fixing their computer at the electronic store",
               "buying lunch at the deli", "attending class at the school"]


def _clock(hour: int) -> str:
    if hour in (0, 24):
        return "12am"
    if hour == 12:
        return "12pm"
    return f"{hour}am" if hour < 12 else f"{hour - 12}pm"


def generate_temporal(rng: random.Random, knobs: Mapping[str, Any]) -> Instance:
    num_sightings = rng.randint(*range_knob(knobs, "min_sightings", "max_sightings", 1, 10))
    wake = rng.randint(5, 9)
    marks = sorted(rng.sample(range(wake + 1, 23), num_sightings + 1))
    bounds = [wake] + marks  # num_sightings + 1 intervals; one of them is free
    free = rng.randrange(len(bounds) - 1)
    person, *witnesses = rng.sample(_PEOPLE, num_sightings + 1)
    place = rng.choice(_PLACES)
    activities = rng.sample([a for a in _ACTIVITIES if not a.endswith(f" {place}")], num_sightings)
    lines = [f"{person} woke up at {_clock(wake)}."]
    sightings, intervals = [], []
    for i in range(len(bounds) - 1):
        interval = [bounds[i], bounds[i + 1]]
        intervals.append(interval)
        if i != free:
            witness, activity = witnesses.pop(), activities.pop()
            lines.append(f"{witness} saw {person} {activity} from {_clock(interval[0])} to {_clock(interval[1])}.")
            sightings.append(interval)
    lines.append(f"The {place} was closed after {_clock(bounds[-1])}.")
    text = (f"Today, {person} went to the {place}. Between what times could they have gone?\nWe know that:\n"
            + "\n".join(lines) + f"\nBetween what times could {person} have gone to the {place}?")
    others = [iv for iv in intervals if iv != intervals[free]]
    picked = [intervals[free]] + rng.sample(others, min(3, len(others)))
    rng.shuffle(picked)
    options = [f"{_clock(a)} to {_clock(b)}" for a, b in picked]
    return option_instance(text, options, picked.index(intervals[free]), wake=wake, close=bounds[-1],
                           sightings=sightings)


def free_interval(wake, close, sightings, options):
    """The option letter of the one stretch between waking and closing not covered by a sighting (hours 0-24)."""
    def clock(hour):
        if hour in (0, 24):
            return "12am"
        if hour == 12:
            return "12pm"
        return f"{hour}am" if hour < 12 else f"{hour - 12}pm"

    busy = set()
    for start, end in sightings:
        busy.update(range(start, end))
    free = [h for h in range(wake, close) if h not in busy]
    if not free or free != list(range(free[0], free[-1] + 1)):
        raise ValueError("the free time is not one interval")
    text = f"{clock(free[0])} to {clock(free[-1] + 1)}"
    return "(" + "ABCDEFGH"[options.index(text)] + ")"


def reference_temporal(inst: Instance) -> str:
    """Mark the hours covered by sightings; the rest is the gap."""
    c = inst.check
    return program([free_interval], "print(free_interval(wake, close, sightings, options))", wake=c["wake"],
                   close=c["close"], sightings=c["sightings"], options=c["options"])


FAMILIES = [
    generated_family("date_understanding", "option", generate_date, reference_date,
                     {"min_year": 1900, "max_year": 2030}, "Compute a date relative to a described day."),
    generated_family("temporal_sequences", "option", generate_temporal, reference_temporal,
                     {"min_sightings": 3, "max_sightings": 5},
                     "Find the free time slot in a day of sightings."),
]
