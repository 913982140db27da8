"""The customers a company's CRM already holds before wa-bridge arrives (seed presets).

Each vendor stand-in's ``seed_company_crm()`` writes these people in its own fields and
returns their CRM ids by label, so identity tests can check that wa-bridge adopts them
instead of creating duplicates. Numbers are fictional (Argentine, Mexican, US, Brazilian).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Person:
    label: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile: str | None = None


COMPANY_CRM: tuple[Person, ...] = (
    # Typed with the country code and spaces, as a web form keeps it (WhatsApp: 5491123456789).
    Person("ar_international", "Paola", "Gutiérrez", phone="+54 9 11 2345-6789"),
    # Typed in national format, no country code (WhatsApp: 15132271572).
    Person("us_national", "Dana", "Whitfield", phone="(513) 227-1572"),
    # Mexican mobile with the old "1" after the country code (WhatsApp: 5215512345678).
    Person("mx_with_1", "Luis", "Ortega", mobile="+52 1 55 1234 5678"),
    # Known only by e-mail (imported from a newsletter).
    Person("email_only", email="carla.mendes@example.com"),
    # Two records sharing one phone (a household; a duplicate import). The second is the
    # more recently modified one.
    Person("shared_older", "Rita", "Souza", phone="+55 11 99999-0001"),
    Person("shared_newer", "Rita", "Souza Lima", phone="+5511999990001"),
)
