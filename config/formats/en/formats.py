"""The one date and time format of Custos's pages and e-mails (ISO order, 24 hours, no locale
guessing); times are in the reader's own zone, which the footer names."""

DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATE_FORMAT = DATE_FORMAT
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
TIME_FORMAT = "H:i"
