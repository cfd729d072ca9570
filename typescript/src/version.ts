export const VERSION = '0.1.0'; // kept equal to package.json's version by a test
