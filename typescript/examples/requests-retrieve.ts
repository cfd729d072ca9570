import Chamelaion from 'chamelaion';
const client = new Chamelaion({
apiKey: process.env['CHAMELAION_API_KEY'], // This is the default and can be omitted
});
const lipsyncRequest = await client.lipsync.requests.retrieve(
'6f82a2d8-a6d4-4e8a-a0fa-e8b09823a2d8',
);
console.log(lipsyncRequest.id);
