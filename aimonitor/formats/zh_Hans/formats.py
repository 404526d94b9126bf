"""zh-Hans number formats for the console, over Django's own zh_Hans formats.

Django groups Chinese numbers by 4 with no separator ("12345678"); operations consoles
show "12,345,678", as SPEC.md asks for every number. Dates keep Django's formats.
"""

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
