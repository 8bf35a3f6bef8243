// Imported late by late-import.ts.
export const double = (n: number): number => n * 2;
