CREATE TABLE "flag_overrides" (
	"flag" text NOT NULL,
	"user_id" uuid,
	"thread_id" uuid,
	"value" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "flag_overrides_scope_key" UNIQUE NULLS NOT DISTINCT("flag","user_id","thread_id"),
	CONSTRAINT "flag_overrides_one_scope" CHECK (num_nonnulls("flag_overrides"."user_id", "flag_overrides"."thread_id") <= 1)
);
--> statement-breakpoint
ALTER TABLE "flag_overrides" ADD CONSTRAINT "flag_overrides_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "flag_overrides" ADD CONSTRAINT "flag_overrides_thread_id_threads_id_fk" FOREIGN KEY ("thread_id") REFERENCES "public"."threads"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "flag_overrides_user_idx" ON "flag_overrides" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "flag_overrides_thread_idx" ON "flag_overrides" USING btree ("thread_id");