/** A user's authority (src/authority/user-authority.ts), by user id: the stub every caller uses. */
export const userAuthority = (env: Env, userId: string) => env.UserAuthority.get(env.UserAuthority.idFromName(userId));
