const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Ids reach SQL as uuid: anything else names no job (and must not become a query error). */
export const isJobId = (id: string): boolean => typeof id === "string" && UUID.test(id);
