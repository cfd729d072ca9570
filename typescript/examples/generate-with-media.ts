import Chamelaion from 'chamelaion';
const client = new Chamelaion({
apiKey: process.env['CHAMELAION_API_KEY'], // This is the default and can be omitted
});
const lipsyncGenerate = await client.lipsync.generateWithMedia({
audio: fs.createReadStream('path/to/file'),
video: fs.createReadStream('path/to/file'),
model: 'lipsync-2',
reference_id: 'upload-demo-01',
});
console.log(lipsyncGenerate.request_id);
