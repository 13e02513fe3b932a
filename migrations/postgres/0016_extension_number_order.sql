-- Extension numbers are listed in numeric order (99, 100, 1000, 1001), not as text (100, 1000,
-- 1001, 99): the lists order by (length, number), which for digit strings is numeric order.
-- This index keeps the unfiltered page an index walk, as the primary key's was.
CREATE INDEX extensions_number_order ON extensions (LENGTH(number), number);
