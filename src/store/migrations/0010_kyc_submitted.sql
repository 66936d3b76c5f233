-- Each KYC request keeps the details the merchant submitted with it (pan, name, email,
-- mobile; sealed like the customer's), so a later init for the same customer, which
-- brings the customer's details up to date, never changes what an earlier KYC asked.
ALTER TABLE kyc_requests ADD COLUMN submitted_sealed {bytes};
-- Requests from before this version: the customer's details as they stand now are the
-- only record there is of what was asked.
UPDATE kyc_requests SET submitted_sealed =
    (SELECT c.details_sealed FROM customers c WHERE c.pk = kyc_requests.customer_pk)
    WHERE submitted_sealed IS NULL;
