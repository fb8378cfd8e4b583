CREATE TABLE "spend_ledger" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "spend_ledger_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"entry_id" text NOT NULL,
	"user_id" uuid NOT NULL,
	"thread_id" uuid,
	"turn_id" text,
	"kind" text NOT NULL,
	"model" text NOT NULL,
	"input_tokens" integer NOT NULL,
	"output_tokens" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "spend_ledger_entry_id_unique" UNIQUE("entry_id")
);
--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "daily_token_budget" bigint;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "monthly_token_budget" bigint;--> statement-breakpoint
ALTER TABLE "spend_ledger" ADD CONSTRAINT "spend_ledger_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "spend_ledger_user_created_idx" ON "spend_ledger" USING btree ("user_id","created_at");--> statement-breakpoint
CREATE INDEX "spend_ledger_thread_idx" ON "spend_ledger" USING btree ("thread_id");--> statement-breakpoint
CREATE INDEX "spend_ledger_created_idx" ON "spend_ledger" USING btree ("created_at");