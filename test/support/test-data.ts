/** Test users carry this email domain, so what tests leave behind can be told apart from real data. */
export const TEST_EMAIL_DOMAIN = "tests.threadline.invalid";
