-- A notification's `url` and `tag` are made from its ticket's id alone
-- (`/support/tickets/<id>` and `ticket-<id>`), so the inbox now derives
-- them when it reads a notification instead of storing them: about 95
-- bytes of every row, a quarter of the table, that a projection wrote, a
-- rebuild wrote twice (into its shadow and into the live table) and every
-- page read of an inbox carried. The contract's `Notification` is unchanged.
ALTER TABLE notifications DROP COLUMN url, DROP COLUMN tag;
