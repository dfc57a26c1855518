-- Delivery outcomes per channel, destination country and UTC day (issue 4): what the outbox
-- worker saw, for `doorman mail status` and, later, status banners about SMS delays in a
-- country. `country` is an ISO 3166-1 alpha-2 code, or '' when unknown (email, or an SMS
-- number without a country). `day` is 00:00 UTC of the day in Unix seconds. No address,
-- body or code is kept: only counts and the last error.
CREATE TABLE delivery_failures (
    channel    TEXT NOT NULL CHECK (channel IN ('email', 'sms')),
    country    TEXT NOT NULL,
    day        BIGINT NOT NULL,
    sent       BIGINT NOT NULL DEFAULT 0,
    failures   BIGINT NOT NULL DEFAULT 0,
    dead       BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (channel, country, day)
);
CREATE INDEX delivery_failures_day_idx ON delivery_failures (day);
